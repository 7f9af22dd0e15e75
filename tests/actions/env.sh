#!/bin/sh
# Prints its environment as a JSON object of names.
printf '{"env":['
env | cut -d= -f1 | sort | sed 's/.*/"&"/' | paste -sd, | tr -d '\n'
printf ']}\n'
