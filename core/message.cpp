// File: core/message.cpp — placeholder until its implementation lands.
