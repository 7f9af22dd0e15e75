#!/bin/sh
# Leaves a grandchild behind that holds stdout open and would outlive us;
# it writes its pid so the test can check it was killed.
sleep 60 &
echo $! > "${PID_FILE:-/dev/null}"
echo '{"forked":true}'
exit 0
