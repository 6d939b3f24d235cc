/* Arm SGI/RD: edk2-platforms Platform/ARM/SgiPkg/AcpiTables/Mcfg.aslc with the SgiPkg defaults PcdPciExpressBaseAddress = 0x60000000, buses 0-255 (PcdPciBusMin/Max). */
[0004]                          Signature : "MCFG"
[0004]                       Table Length : 00000000
[0001]                           Revision : 01
[0001]                           Checksum : 00
[0006]                             Oem ID : "ARMLTD"
[0008]                       Oem Table ID : "ARMSGI  "
[0004]                       Oem Revision : 20140727
[0004]                    Asl Compiler ID : "ARM "
[0004]              Asl Compiler Revision : 00000099

[0008]                           Reserved : 0000000000000000

[0008]                       Base Address : 0000000060000000
[0002]               Segment Group Number : 0000
[0001]                   Start Bus Number : 00
[0001]                     End Bus Number : FF
[0004]                           Reserved : 00000000
