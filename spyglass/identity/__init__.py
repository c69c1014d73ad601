"""The embedded identity service, compatible with the Keystone v3 API that clients use."""
