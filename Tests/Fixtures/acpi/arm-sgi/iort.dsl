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
[004h 0004   4]                 Table Length : 000000EC
[008h 0008   1]                     Revision : 00
[009h 0009   1]                     Checksum : 99
[00Ah 0010   6]                       Oem ID : "ARMLTD"
[010h 0016   8]                 Oem Table ID : "ARMSGI  "
[018h 0024   4]                 Oem Revision : 20140727
[01Ch 0028   4]              Asl Compiler ID : "INTL"
[020h 0032   4]        Asl Compiler Revision : 20200925

[024h 0036   4]                   Node Count : 00000003
[028h 0040   4]                  Node Offset : 00000030
[02Ch 0044   4]                     Reserved : 00000000

[030h 0048   1]                         Type : 00
[031h 0049   2]                       Length : 0018
[033h 0051   1]                     Revision : 00
[034h 0052   4]                     Reserved : 00000000
[038h 0056   4]                Mapping Count : 00000000
[03Ch 0060   4]               Mapping Offset : 00000000

[040h 0064   4]                     ItsCount : 00000001
[044h 0068   4]                  Identifiers : 00000000

[048h 0072   1]                         Type : 04
[049h 0073   2]                       Length : 006C
[04Bh 0075   1]                     Revision : 02
[04Ch 0076   4]                     Reserved : 00000000
[050h 0080   4]                Mapping Count : 00000002
[054h 0084   4]               Mapping Offset : 00000044

[058h 0088   8]                 Base Address : 000000004F000000
[060h 0096   4]        Flags (decoded below) : 00000001
                             COHACC Override : 1
                               HTTU Override : 0
                      Proximity Domain Valid : 0
[064h 0100   4]                     Reserved : 00000000
[068h 0104   8]                VATOS Address : 0000000000000000
[070h 0112   4]                        Model : 00000000
[074h 0116   4]                   Event GSIV : 00000104
[078h 0120   4]                     PRI GSIV : 00000000
[07Ch 0124   4]                    GERR GSIV : 00000106
[080h 0128   4]                    Sync GSIV : 00000105
[084h 0132   4]             Proximity Domain : 00000000
[088h 0136   4]      Device ID Mapping Index : 00000001

[08Ch 0140   4]                   Input base : 00000000
[090h 0144   4]                     ID Count : 0000FFFF
[094h 0148   4]                  Output Base : 00000000
[098h 0152   4]             Output Reference : 00000030
[09Ch 0156   4]        Flags (decoded below) : 00000000
                              Single Mapping : 0

[0A0h 0160   4]                   Input base : 00000000
[0A4h 0164   4]                     ID Count : 00000001
[0A8h 0168   4]                  Output Base : 00010000
[0ACh 0172   4]             Output Reference : 00000030
[0B0h 0176   4]        Flags (decoded below) : 00000001
                              Single Mapping : 1

[0B4h 0180   1]                         Type : 02
[0B5h 0181   2]                       Length : 0038
[0B7h 0183   1]                     Revision : 00
[0B8h 0184   4]                     Reserved : 00000000
[0BCh 0188   4]                Mapping Count : 00000001
[0C0h 0192   4]               Mapping Offset : 00000024

[0C4h 0196   8]            Memory Properties : [IORT Memory Access Properties]
[0C4h 0196   4]              Cache Coherency : 00000001
[0C8h 0200   1]        Hints (decoded below) : 00
                                   Transient : 0
                              Write Allocate : 0
                               Read Allocate : 0
                                    Override : 0
[0C9h 0201   2]                     Reserved : 0000
[0CBh 0203   1] Memory Flags (decoded below) : 00
                                   Coherency : 0
                            Device Attribute : 0
[0CCh 0204   4]                ATS Attribute : 00000001
[0D0h 0208   4]           PCI Segment Number : 00000000
[0D4h 0212   1]            Memory Size Limit : 00
[0D5h 0213   3]                     Reserved : 000000

[0D8h 0216   4]                   Input base : 00000000
[0DCh 0220   4]                     ID Count : 0000FFFF
[0E0h 0224   4]                  Output Base : 00000000
[0E4h 0228   4]             Output Reference : 00000048
[0E8h 0232   4]        Flags (decoded below) : 00000000
                              Single Mapping : 0

Raw Table Data: Length 236 (0xEC)

    0000: 49 4F 52 54 EC 00 00 00 00 99 41 52 4D 4C 54 44  // IORT......ARMLTD
    0010: 41 52 4D 53 47 49 20 20 27 07 14 20 49 4E 54 4C  // ARMSGI  '.. INTL
    0020: 25 09 20 20 03 00 00 00 30 00 00 00 00 00 00 00  // %.  ....0.......
    0030: 00 18 00 00 00 00 00 00 00 00 00 00 00 00 00 00  // ................
    0040: 01 00 00 00 00 00 00 00 04 6C 00 02 00 00 00 00  // .........l......
    0050: 02 00 00 00 44 00 00 00 00 00 00 4F 00 00 00 00  // ....D......O....
    0060: 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  // ................
    0070: 00 00 00 00 04 01 00 00 00 00 00 00 06 01 00 00  // ................
    0080: 05 01 00 00 00 00 00 00 01 00 00 00 00 00 00 00  // ................
    0090: FF FF 00 00 00 00 00 00 30 00 00 00 00 00 00 00  // ........0.......
    00A0: 00 00 00 00 01 00 00 00 00 00 01 00 30 00 00 00  // ............0...
    00B0: 01 00 00 00 02 38 00 00 00 00 00 00 01 00 00 00  // .....8..........
    00C0: 24 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00  // $...............
    00D0: 00 00 00 00 00 00 00 00 00 00 00 00 FF FF 00 00  // ................
    00E0: 00 00 00 00 48 00 00 00 00 00 00 00              // ....H.......
