"""One search request and one result schema, shared by the CLI, the HTTP service and the demo."""
