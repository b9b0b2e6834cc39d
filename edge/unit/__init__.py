"""The checkpoint unit: the daemon on the Raspberry Pi and its vision (`pip install 'traceon-edge[unit]'`)."""
