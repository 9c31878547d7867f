// File: core/line.cpp — placeholder until its implementation lands.
