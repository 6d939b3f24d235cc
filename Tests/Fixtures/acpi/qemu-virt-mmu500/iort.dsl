/*
 * Intel ACPI Component Architecture
 * AML/ASL+ Disassembler version 20200925 (64-bit version)
 * Copyright (c) 2000 - 2020 Intel Corporation
 * 
 *
 * ACPI Data Table [IORT]
 *
 * Format: [HexOffset DecimalOffset ByteLength]  FieldName : FieldValue
 */

[000h 0000   4]                    Signature : "IORT"    [IO Remapping Table]
[004h 0004   4]                 Table Length : 00000134
[008h 0008   1]                     Revision : 05
[009h 0009   1]                     Checksum : DF
[00Ah 0010   6]                       Oem ID : "BOCHS "
[010h 0016   8]                 Oem Table ID : "BXPC    "
[018h 0024   4]                 Oem Revision : 00000001
[01Ch 0028   4]              Asl Compiler ID : "INTL"
[020h 0032   4]        Asl Compiler Revision : 20200925

[024h 0036   4]                   Node Count : 00000003
[028h 0040   4]                  Node Offset : 00000030
[02Ch 0044   4]                     Reserved : 00000000

[030h 0048   1]                         Type : 00
[031h 0049   2]                       Length : 0018
[033h 0051   1]                     Revision : 01
[034h 0052   4]                     Reserved : 00000000
[038h 0056   4]                Mapping Count : 00000000
[03Ch 0060   4]               Mapping Offset : 00000000

[040h 0064   4]                     ItsCount : 00000001
[044h 0068   4]                  Identifiers : 00000000

[048h 0072   1]                         Type : 03
[049h 0073   2]                       Length : 00A0
[04Bh 0075   1]                     Revision : 01
[04Ch 0076   4]                     Reserved : 00000000
[050h 0080   4]                Mapping Count : 00000001
[054h 0084   4]               Mapping Offset : 0000008C

[058h 0088   8]                 Base Address : 0000000009050000
[060h 0096   8]                         Span : 0000000000010000
[068h 0104   4]                        Model : 00000003
[06Ch 0108   4]        Flags (decoded below) : 00000002
                               DVM Supported : 0
                               Coherent Walk : 1
[070h 0112   4]      Global Interrupt Offset : 0000003C
[074h 0116   4]      Context Interrupt Count : 00000008
[078h 0120   4]     Context Interrupt Offset : 0000004C
[07Ch 0124   4]          PMU Interrupt Count : 00000000
[080h 0128   4]         PMU Interrupt Offset : 0000008C

[084h 0132   4]                      NSgIrpt : 0000008F
[088h 0136   4] NSgIrpt Flags (decoded below) : 00000000
                              Edge Triggered : 0
[08Ch 0140   4]                   NSgCfgIrpt : 0000008F
[090h 0144   4] NSgCfgIrpt Flags (decoded below) : 00000000
                              Edge Triggered : 0
[094h 0148   8]            Context Interrupt : 0000000000000090
[09Ch 0156   8]            Context Interrupt : 0000000000000091
[0A4h 0164   8]            Context Interrupt : 0000000000000092
[0ACh 0172   8]            Context Interrupt : 0000000000000093
[0B4h 0180   8]            Context Interrupt : 0000000000000094
[0BCh 0188   8]            Context Interrupt : 0000000000000095
[0C4h 0196   8]            Context Interrupt : 0000000000000096
[0CCh 0204   8]            Context Interrupt : 0000000000000097

[0D4h 0212   4]                   Input base : 00000000
[0D8h 0216   4]                     ID Count : 0000FFFF
[0DCh 0220   4]                  Output Base : 00000000
[0E0h 0224   4]             Output Reference : 00000030
[0E4h 0228   4]        Flags (decoded below) : 00000000
                              Single Mapping : 0

[0E8h 0232   1]                         Type : 02
[0E9h 0233   2]                       Length : 004C
[0EBh 0235   1]                     Revision : 03
[0ECh 0236   4]                     Reserved : 00000000
[0F0h 0240   4]                Mapping Count : 00000002
[0F4h 0244   4]               Mapping Offset : 00000024

[0F8h 0248   8]            Memory Properties : [IORT Memory Access Properties]
[0F8h 0248   4]              Cache Coherency : 00000001
[0FCh 0252   1]        Hints (decoded below) : 00
                                   Transient : 0
                              Write Allocate : 0
                               Read Allocate : 0
                                    Override : 0
[0FDh 0253   2]                     Reserved : 0000
[0FFh 0255   1] Memory Flags (decoded below) : 03
                                   Coherency : 1
                            Device Attribute : 1
[100h 0256   4]                ATS Attribute : 00000000
[104h 0260   4]           PCI Segment Number : 00000000
[108h 0264   1]            Memory Size Limit : 40
[109h 0265   3]                     Reserved : 000000

[10Ch 0268   4]                   Input base : 00000000
[110h 0272   4]                     ID Count : 000000FF
[114h 0276   4]                  Output Base : 00000000
[118h 0280   4]             Output Reference : 00000048
[11Ch 0284   4]        Flags (decoded below) : 00000000
                              Single Mapping : 0

[120h 0288   4]                   Input base : 00000100
[124h 0292   4]                     ID Count : 0000FEFF
[128h 0296   4]                  Output Base : 00000100
[12Ch 0300   4]             Output Reference : 00000030
[130h 0304   4]        Flags (decoded below) : 00000000
                              Single Mapping : 0

Raw Table Data: Length 308 (0x134)

    0000: 49 4F 52 54 34 01 00 00 05 DF 42 4F 43 48 53 20  // IORT4.....BOCHS 
    0010: 42 58 50 43 20 20 20 20 01 00 00 00 49 4E 54 4C  // BXPC    ....INTL
    0020: 25 09 20 20 03 00 00 00 30 00 00 00 00 00 00 00  // %.  ....0.......
    0030: 00 18 00 01 00 00 00 00 00 00 00 00 00 00 00 00  // ................
    0040: 01 00 00 00 00 00 00 00 03 A0 00 01 00 00 00 00  // ................
    0050: 01 00 00 00 8C 00 00 00 00 00 05 09 00 00 00 00  // ................
    0060: 00 00 01 00 00 00 00 00 03 00 00 00 02 00 00 00  // ................
    0070: 3C 00 00 00 08 00 00 00 4C 00 00 00 00 00 00 00  // <.......L.......
    0080: 8C 00 00 00 8F 00 00 00 00 00 00 00 8F 00 00 00  // ................
    0090: 00 00 00 00 90 00 00 00 00 00 00 00 91 00 00 00  // ................
    00A0: 00 00 00 00 92 00 00 00 00 00 00 00 93 00 00 00  // ................
    00B0: 00 00 00 00 94 00 00 00 00 00 00 00 95 00 00 00  // ................
    00C0: 00 00 00 00 96 00 00 00 00 00 00 00 97 00 00 00  // ................
    00D0: 00 00 00 00 00 00 00 00 FF FF 00 00 00 00 00 00  // ................
    00E0: 30 00 00 00 00 00 00 00 02 4C 00 03 00 00 00 00  // 0........L......
    00F0: 02 00 00 00 24 00 00 00 01 00 00 00 00 00 00 03  // ....$...........
    0100: 00 00 00 00 00 00 00 00 40 00 00 00 00 00 00 00  // ........@.......
    0110: FF 00 00 00 00 00 00 00 48 00 00 00 00 00 00 00  // ........H.......
    0120: 00 01 00 00 FF FE 00 00 00 01 00 00 30 00 00 00  // ............0...
    0130: 00 00 00 00                                      // ....
