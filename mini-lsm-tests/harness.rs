// harness placeholder
