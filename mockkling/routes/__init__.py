"""One module per API surface; each turns HTTP into Backend calls and nothing more."""
