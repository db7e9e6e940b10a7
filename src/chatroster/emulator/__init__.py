"""`chatroster emulator`: the local store served over the vendors' HTTP APIs.

`server` runs the process, `app` assembles the routes and the traffic middleware
(stats, rate limits, faults), and one package per vendor API translates requests into
store calls: `nexconn` (v4 and the legacy whitelist endpoints) and `cometchat` (v3).
Both have the same layout: one module per endpoint group, plus `errors`, `http` and
`routes`. The store holds the meaning; the API modules only translate. `storage`
holds the emulator's own queries on the store: the reads shaped as the vendors page
and filter them, and CometChat's roles.
"""
