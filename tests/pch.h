// File: tests/pch.h — the precompiled header of every test executable (tests/CMakeLists.txt):
// GoogleTest, GoogleMock, nlohmann/json, fmt and the standard headers the tests use, parsed
// once per build instead of once per test file. Only third-party and standard headers: a
// change to our own headers must not rebuild it.
#pragma once

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>
