/*
 * QEMU virt's IORT with its SMMUv3 node replaced by an SMMUv1/v2 node (type 3, DEN 0049E
 * Table 14): an Arm CoreLink MMU-500 (Model 3) at 0x9050000, span 64 KiB (8 context banks of
 * 4 KiB pages), coherent walk, global interrupt GSIV 0x8F (NSgIrpt and NSgCfgIrpt), eight
 * level-triggered context interrupts 0x90-0x97, StreamIDs 0-0xFFFF -> the ITS group as DeviceIDs.
 * Root complex: RIDs 0x0-0xFF -> the SMMU as StreamIDs, the rest -> the ITS group. Not a
 * shipping platform's table: the smallest IORT that puts an SMMUv2 between a root complex and
 * an ITS, for the arm-smmu (SMMUv1/v2) ACPI path.
 */
[0004]                          Signature : "IORT"
[0004]                       Table Length : 00000000
[0001]                           Revision : 05
[0001]                           Checksum : 00
[0006]                             Oem ID : "BOCHS "
[0008]                       Oem Table ID : "BXPC    "
[0004]                       Oem Revision : 00000001
[0004]                    Asl Compiler ID : "BXPC"
[0004]              Asl Compiler Revision : 00000001

[0004]                         Node Count : 00000003
[0004]                        Node Offset : 00000030
[0004]                           Reserved : 00000000

[0001]                               Type : 00
[0002]                             Length : 0018
[0001]                           Revision : 01
[0004]                           Reserved : 00000000
[0004]                      Mapping Count : 00000000
[0004]                     Mapping Offset : 00000000

[0004]                           ItsCount : 00000001
[0004]                        Identifiers : 00000000

[0001]                               Type : 03
[0002]                             Length : 00A0
[0001]                           Revision : 01
[0004]                           Reserved : 00000000
[0004]                      Mapping Count : 00000001
[0004]                     Mapping Offset : 0000008C

[0008]                       Base Address : 0000000009050000
[0008]                               Span : 0000000000010000
[0004]                              Model : 00000003
[0004]              Flags (decoded below) : 00000002
                       DVM Supported : 0
                       Coherent Walk : 1
[0004]            Global Interrupt Offset : 0000003C
[0004]            Context Interrupt Count : 00000008
[0004]           Context Interrupt Offset : 0000004C
[0004]                PMU Interrupt Count : 00000000
[0004]               PMU Interrupt Offset : 0000008C

[0004]                            NSgIrpt : 0000008F
[0004]      NSgIrpt Flags (decoded below) : 00000000
                      Edge Triggered : 0
[0004]                         NSgCfgIrpt : 0000008F
[0004]   NSgCfgIrpt Flags (decoded below) : 00000000
                      Edge Triggered : 0

[0008]                  Context Interrupt : 0000000000000090
[0008]                  Context Interrupt : 0000000000000091
[0008]                  Context Interrupt : 0000000000000092
[0008]                  Context Interrupt : 0000000000000093
[0008]                  Context Interrupt : 0000000000000094
[0008]                  Context Interrupt : 0000000000000095
[0008]                  Context Interrupt : 0000000000000096
[0008]                  Context Interrupt : 0000000000000097

[0004]                         Input base : 00000000
[0004]                           ID Count : 0000FFFF
[0004]                        Output Base : 00000000
[0004]                   Output Reference : 00000030
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

[0001]                               Type : 02
[0002]                             Length : 004C
[0001]                           Revision : 03
[0004]                           Reserved : 00000002
[0004]                      Mapping Count : 00000002
[0004]                     Mapping Offset : 00000024

[0008]                  Memory Properties : [IORT Memory Access Properties]
[0004]                    Cache Coherency : 00000001
[0001]              Hints (decoded below) : 00
                           Transient : 0
                      Write Allocate : 0
                       Read Allocate : 0
                            Override : 0
[0002]                           Reserved : 0000
[0001]       Memory Flags (decoded below) : 03
                           Coherency : 1
                    Device Attribute : 1
[0004]                      ATS Attribute : 00000000
[0004]                 PCI Segment Number : 00000000
[0001]                  Memory Size Limit : 40
[0003]                           Reserved : 000000

[0004]                         Input base : 00000000
[0004]                           ID Count : 000000FF
[0004]                        Output Base : 00000000
[0004]                   Output Reference : 00000048
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

[0004]                         Input base : 00000100
[0004]                           ID Count : 0000FEFF
[0004]                        Output Base : 00000100
[0004]                   Output Reference : 00000030
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

