// File: auth/secrets.cpp — placeholder
