"""Sources and parsers: everything that turns raw agency records into normalized events."""
