// File: core/store.cpp — placeholder until its implementation lands.
