"""Day-ahead price feeds: the ENTSO-E transparency platform, and Nord Pool's and ENTSO-E's exports.

- :mod:`.zones`: bidding zones by friendly name, EIC code and local zone.
- :mod:`.entsoe`: the A44 price document, its acknowledgements, and the RESTful API client.
- :mod:`.simulator`: an ENTSO-E API simulator for tests and demos (``meterhub simulate entsoe``).
- :mod:`.exports`: files exported by Nord Pool's data portal and the ENTSO-E platform.
- :mod:`.sources`: the ``[[prices]]`` tables of ``meterhub.toml``.
- :mod:`.schedule`: the hub's scheduled fetch that keeps tomorrow's prices in the store.

Prices are stored raw: the exchange's price per kWh (EUR/MWh divided by 1000), without VAT,
grid fees or a supplier's markup, which a place's tariff adds (``--adder``, fees).
"""
