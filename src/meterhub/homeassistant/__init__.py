"""Home Assistant: publish every meter to an MQTT broker with Home Assistant's MQTT discovery.

:mod:`.settings` reads the ``[homeassistant]`` section of ``meterhub.toml``, :mod:`.discovery`
builds the discovery configs and state documents, :mod:`.publisher` keeps the broker up to date
inside ``meterhub serve`` (or once, from ``meterhub homeassistant publish --once``).
"""
