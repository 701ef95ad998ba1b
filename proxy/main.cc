// Placeholder entry point; replaced by the real one (flags, conf, server) as the proxy lands.
#include <cstdio>
int main() {
  std::puts("portico " PORTICO_VERSION);
  return 0;
}
