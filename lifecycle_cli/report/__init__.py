"""Reports: where customers stand, how they moved, how long they stay, and who is late."""
