"""GraphQL types: plain data with at most a one-line hand-off to a loader in `info.context`."""
