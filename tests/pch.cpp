// File: tests/pch.cpp — the translation unit that builds tests/pch.h once (tests/CMakeLists.txt).
