"""Tools for PBX admins, all driven by the same YAML dialplans the service runs.

- :mod:`ivr.tools.validate`: every problem with file and line, beyond what loading checks;
- :mod:`ivr.tools.simulate`: walk the menus of a line without a PBX;
- :mod:`ivr.tools.graph`: the menu tree as Mermaid or Graphviz DOT (PNG/SVG through ``dot``);
- :mod:`ivr.tools.asterisk_config`: ``extensions.conf`` and ``manager.conf`` pieces;
- :mod:`ivr.tools.prompts`: render missing prompt recordings from their text.
"""
