"""srp-pcap: put the full-content packet capture of a SIEM alarm in front of the analyst."""

__version__ = "0.1.0"
