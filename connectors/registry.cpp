// File: connectors/registry.cpp — placeholder until the IMAP connector lands.
