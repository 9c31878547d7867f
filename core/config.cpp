// File: core/config.cpp — placeholder until its implementation lands.
