"""The runlink tracker service (extra `server`): ingests events, links them into run trees, serves them."""
