"""AMS reader (amsleser.no) HAN-port device: local HTTP JSON API and MQTT push."""
