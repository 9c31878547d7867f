// File: tests/unit/core/gobject_test.cpp — the owning pointers for GLib objects
// (core/internal/gobject.h).
#include "core/internal/gobject.h"

#include <gtest/gtest.h>

#include <utility>

namespace mb::internal {
namespace {

TEST(GObjectTest, GPtrDropsItsReference) {
  GObject* raw = G_OBJECT(g_object_new(G_TYPE_OBJECT, nullptr));
  gpointer watch = raw;
  g_object_add_weak_pointer(raw, &watch);
  {
    GPtr<GObject> owner(raw);
    g_object_ref(raw);  // a second reference: the GPtr drops only its own
    GPtr<GObject> moved = std::move(owner);
    EXPECT_EQ(owner.get(), nullptr);
  }
  ASSERT_NE(watch, nullptr);  // alive: the second reference holds it
  g_object_unref(raw);
  EXPECT_EQ(watch, nullptr);  // finalized
}

TEST(GObjectTest, EmptyHoldersAreHarmless) {
  GPtr<GObject> none;
  none.reset();
  GCharPtr text(g_strdup("freed with g_free"));
  EXPECT_STREQ(text.get(), "freed with g_free");
  text.reset();
  EXPECT_EQ(text.get(), nullptr);
}

}  // namespace
}  // namespace mb::internal
