"""Studies: sweeps over devices, tiles and time, with tables and figures."""
