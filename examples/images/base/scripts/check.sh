#!/bin/sh
echo "running checks"
