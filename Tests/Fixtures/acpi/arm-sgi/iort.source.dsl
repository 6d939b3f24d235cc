/*
 * Arm SGI/RD reference platforms: translated from edk2-platforms
 * Platform/ARM/SgiPkg/AcpiTables/Iort.aslc (ITS group; SMMUv3 rev 2 at 0x4F000000 with wired
 * GSIVs 260/262/261, DeviceID mapping index 1 = a single mapping to DeviceID 0x10000; root
 * complex with ATS, all 64Ki RIDs to the SMMUv3). Header fields from SgiAcpiHeader.h.
 */
[0004]                          Signature : "IORT"
[0004]                       Table Length : 00000000
[0001]                           Revision : 00
[0001]                           Checksum : 00
[0006]                             Oem ID : "ARMLTD"
[0008]                       Oem Table ID : "ARMSGI  "
[0004]                       Oem Revision : 20140727
[0004]                    Asl Compiler ID : "ARM "
[0004]              Asl Compiler Revision : 00000099

[0004]                         Node Count : 00000003
[0004]                        Node Offset : 00000030
[0004]                           Reserved : 00000000

[0001]                               Type : 00
[0002]                             Length : 0018
[0001]                           Revision : 00
[0004]                           Reserved : 00000000
[0004]                      Mapping Count : 00000000
[0004]                     Mapping Offset : 00000000

[0004]                           ItsCount : 00000001
[0004]                        Identifiers : 00000000

[0001]                               Type : 04
[0002]                             Length : 006C
[0001]                           Revision : 02
[0004]                           Reserved : 00000000
[0004]                      Mapping Count : 00000002
[0004]                     Mapping Offset : 00000044

[0008]                       Base Address : 000000004F000000
[0004]              Flags (decoded below) : 00000001
                     COHACC Override : 1
                       HTTU Override : 0
              Proximity Domain Valid : 0
[0004]                           Reserved : 00000000
[0008]                      VATOS Address : 0000000000000000
[0004]                              Model : 00000000
[0004]                         Event GSIV : 00000104
[0004]                           PRI GSIV : 00000000
[0004]                          GERR GSIV : 00000106
[0004]                          Sync GSIV : 00000105
[0004]                   Proximity Domain : 00000000
[0004]            Device ID Mapping Index : 00000001

[0004]                         Input base : 00000000
[0004]                           ID Count : 0000FFFF
[0004]                        Output Base : 00000000
[0004]                   Output Reference : 00000030
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

[0004]                         Input base : 00000000
[0004]                           ID Count : 00000001
[0004]                        Output Base : 00010000
[0004]                   Output Reference : 00000030
[0004]              Flags (decoded below) : 00000001
                      Single Mapping : 1

[0001]                               Type : 02
[0002]                             Length : 0038
[0001]                           Revision : 00
[0004]                           Reserved : 00000000
[0004]                      Mapping Count : 00000001
[0004]                     Mapping Offset : 00000024

[0008]                  Memory Properties : [IORT Memory Access Properties]
[0004]                    Cache Coherency : 00000001
[0001]              Hints (decoded below) : 00
                           Transient : 0
                      Write Allocate : 0
                       Read Allocate : 0
                            Override : 0
[0002]                           Reserved : 0000
[0001]       Memory Flags (decoded below) : 00
                           Coherency : 0
                    Device Attribute : 0
[0004]                      ATS Attribute : 00000001
[0004]                 PCI Segment Number : 00000000
[0001]                  Memory Size Limit : 00
[0003]                           Reserved : 000000

[0004]                         Input base : 00000000
[0004]                           ID Count : 0000FFFF
[0004]                        Output Base : 00000000
[0004]                   Output Reference : 00000048
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

