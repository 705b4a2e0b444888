#!/bin/sh
echo "unfinished"
