// File: core/http.cpp — the cpprestsdk-backed HttpClient with core/net's TLS policy.
#include "core/http.h"
