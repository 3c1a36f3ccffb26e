"""UMeter (umeter.nl): a Dutch cloud service for smart-meter data, P4 15-minute usage."""
