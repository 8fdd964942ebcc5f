#!/usr/bin/env bash
# Builds the listener jar (filled in by the Spark listener work).
exit 0
