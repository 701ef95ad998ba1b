// Keeps portico_proxy non-empty while it grows.
