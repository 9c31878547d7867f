// File: core/internal/gobject.h — owning pointers for GLib/GMime objects (core/message.cpp,
// core/compose.cpp): GPtr<T> drops its reference with g_object_unref, GCharPtr frees a
// g_malloc'd string with g_free.
//
//   GPtr<GMimeStream> stream(g_mime_stream_mem_new());
#pragma once

#include <glib-object.h>

#include <memory>

namespace mb::internal {

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

struct GFree {
  void operator()(gpointer p) const { g_free(p); }
};
using GCharPtr = std::unique_ptr<char, GFree>;

}  // namespace mb::internal
