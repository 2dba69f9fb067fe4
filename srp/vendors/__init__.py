"""One module per capture appliance, each behind the interface of srp.retrieval.vendor.

A vendor module holds every wire detail of its appliance (routes, headers, field names,
status words) and reads its own options, so fixing one vendor touches one file; the facts
they rely on are in docs/vendor-contracts.md. The retrieval core (srp.retrieval) does the
rest the same way for all: caps, parallel downloads, unpacking, merging, the manifest and
the outcome.
"""
