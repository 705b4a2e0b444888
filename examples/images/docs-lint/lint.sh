#!/bin/sh
[ "$1" = "--self-test" ] && echo "lint ok: $(cat /etc/lint/INDEX | wc -l) rules"
