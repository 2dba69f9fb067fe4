"""Look-alikes of the capture appliances srp-pcap talks to, for tests, benchmarks and demos.

Each simulator serves a vendor's API over real HTTPS on loopback (a self-signed certificate
it writes out for the client's --ca-bundle), serves realistic captures made with scapy, and
can be switched into the faults real appliances show. Nothing here is imported by the
retrieval commands themselves.
"""
