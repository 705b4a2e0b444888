#!/bin/sh
echo "formatting"
