// File: connectors/imap/placeholder.cpp
