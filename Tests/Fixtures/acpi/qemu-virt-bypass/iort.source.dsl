/*
 * QEMU virt, iommu=smmuv3, a root port on the main root bus (buses 0-1: RIDs 0x0000-0x01FF
 * translated) and a pxb-pcie,bus_nr=0x80,bypass_iommu=on (not translated): build_iort maps
 * RIDs 0x0-0x1FF to the SMMUv3 and the bypassed remainder 0x200-0xFFFF straight to the ITS group.
 * Debian's iasl 20200925 knows the node word at +4 only as "Reserved" and forces it to 0, so the
 * Identifiers QEMU writes (1, 2) are 0 here; the qemu-virt-rmr fixture keeps them.
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

[0001]                               Type : 04
[0002]                             Length : 0058
[0001]                           Revision : 04
[0004]                           Reserved : 00000001
[0004]                      Mapping Count : 00000001
[0004]                     Mapping Offset : 00000044

[0008]                       Base Address : 0000000009050000
[0004]              Flags (decoded below) : 00000001
                     COHACC Override : 1
                       HTTU Override : 0
              Proximity Domain Valid : 0
[0004]                           Reserved : 00000000
[0008]                      VATOS Address : 0000000000000000
[0004]                              Model : 00000000
[0004]                         Event GSIV : 0000006A
[0004]                           PRI GSIV : 0000006B
[0004]                          GERR GSIV : 0000006D
[0004]                          Sync GSIV : 0000006C
[0004]                   Proximity Domain : 00000000
[0004]            Device ID Mapping Index : 00000000

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
[0004]                           ID Count : 000001FF
[0004]                        Output Base : 00000000
[0004]                   Output Reference : 00000048
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

[0004]                         Input base : 00000200
[0004]                           ID Count : 0000FDFF
[0004]                        Output Base : 00000200
[0004]                   Output Reference : 00000030
[0004]              Flags (decoded below) : 00000000
                      Single Mapping : 0

