// File: core/ingest.cpp — placeholder until its implementation lands.
