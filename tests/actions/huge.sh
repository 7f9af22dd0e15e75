#!/bin/sh
# Prints far more than any sane limit.
head -c 5000000 /dev/zero | tr '\0' 'x'
