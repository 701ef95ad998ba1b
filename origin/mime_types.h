#pragma once
// File extension -> Content-Type, for origins that serve files (the dir origin). Pure, no I/O,
// safe from any thread (the table is a constant).
//
// Text types carry "; charset=utf-8" (static sites are written in UTF-8; without a charset a
// browser guesses). Unknown or missing extensions give application/octet-stream, which is what
// S3 answers for an object uploaded without a type.
#include <string_view>

namespace portico::origin {

inline constexpr std::string_view kDefaultMimeType = "application/octet-stream";

// `ext` without the dot, any case: "html", "PNG". Unknown -> kDefaultMimeType.
std::string_view mimeTypeForExtension(std::string_view ext);

// The extension of the last path segment ("a/b.min.JS" -> "JS"); "" when there is none.
// A leading dot alone (".htaccess") is a hidden file's name, not an extension.
std::string_view pathExtension(std::string_view path);

// mimeTypeForExtension(pathExtension(path)).
std::string_view mimeTypeForPath(std::string_view path);

}  // namespace portico::origin
