import DoorbellCommands

Doorbell.main()
