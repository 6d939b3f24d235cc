import DoorbellCommands

Doorbell.mainCheckingSubcommand()
