"""Images: records and queries, the catalog (create, show, list, update), policy and visibility,
the state machine, deletion and the recycle bin, project copies, locations, blob references."""
