// File: core/net.cpp — placeholder until its implementation lands.
