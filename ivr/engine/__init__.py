"""The IVR engine: a sans-I/O state machine over a validated dialplan.

- :mod:`ivr.engine.route`: the engine's output, a :class:`~ivr.engine.route.Route`;
- :mod:`ivr.engine.lines`: which line a call belongs to (``detect_line``);
- :mod:`ivr.engine.schedule`: business hours, holidays and make-up days (``is_open``);
- :mod:`ivr.engine.walk`: one call's way through the menus (``MenuWalk``: ``Ask``/``Done``).
"""
