#!/bin/sh
echo "kept although wip"
