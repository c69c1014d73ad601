"""The HTTP layer: routing, request parsing, wire rendering and error mapping."""
